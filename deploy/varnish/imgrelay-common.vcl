# The rules shared by every Varnish in front of imgrelay, included by `imgrelay.vcl` (one
# replica) and `fleet.vcl` (several behind a shard director). Keep this file beside them: they
# include it as "./imgrelay-common.vcl", which Varnish resolves against the including file's
# directory. It expects the including file to declare `vcl 4.1;`, its backends and an ACL named
# `purgers`, and to have chosen `req.backend_hint` before these subroutines run (Varnish runs
# the bodies of a `vcl_*` subroutine defined in several places in the order they appear, and
# the first `return` ends it).
#
# varnishd's environment must hold `IMGRELAY_CDN__PURGE_TOKEN`, the `cdn.purge_token` of the
# imgrelay replicas that send it PURGE (the same variable configures imgrelay itself): without
# it every PURGE is refused.
#
# imgrelay already answers like a CDN origin (SPEC §2.4): canonical URLs, Cache-Control with
# stale-while-revalidate and stale-if-error, a strong ETag, `Vary: Accept` only for
# `output=auto`, and `xkey: {g}` naming the source an image was made from. These rules make
# Varnish honour all of that and nothing more. Every rule says what it is for.

import std;
import xkey;   # purge every variant of a source by its surrogate key

sub vcl_recv {
    # Every answer carries the id of its own request: the client's when it is a well-formed
    # id (imgrelay's rule: 1-128 of [A-Za-z0-9._:-]), else this Varnish request's xid. It is
    # sent to imgrelay on a miss, so both logs share it, and never stored with the object.
    if (req.http.X-Request-Id !~ "^[A-Za-z0-9._:-]{1,128}$") {
        set req.http.X-Request-Id = req.xid;
    }

    # Markers of the stale-copy logic below (vcl_hit, vcl_synth); a client cannot set them.
    if (req.restarts == 0) {
        unset req.http.X-Imgrelay-Revalidate;
        unset req.http.X-Imgrelay-Stale-Ok;
    } else if (req.http.X-Imgrelay-Stale-Ok) {
        # The revalidation failed (imgrelay answered 5xx or not at all): a stale copy within
        # stale-if-error is better than an error.
        set req.grace = 365d;
    } else if (req.http.X-Imgrelay-Revalidate) {
        # Too old to serve while imgrelay is up: no grace, so this lookup waits for a fetch.
        set req.grace = 0s;
    }

    # PURGE with `xkey: {g}` drops every object tagged with that key: the original and all
    # variants of one source, whatever their URL. Only from `purgers` and only with the purge
    # token: behind a TLS terminator on this host every reader comes from 127.0.0.1, and a
    # source's key is computable from its URL, so an address is no authority by itself.
    if (req.method == "PURGE") {
        if (client.ip !~ purgers || std.getenv("IMGRELAY_CDN__PURGE_TOKEN") == ""
            || !req.http.X-Imgrelay-Purge-Token
            || req.http.X-Imgrelay-Purge-Token != std.getenv("IMGRELAY_CDN__PURGE_TOKEN")) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey) {
            return (synth(400, "PURGE needs an xkey header"));
        }
        set req.http.X-Purged = xkey.purge(req.http.xkey);
        return (synth(200, "Purged " + req.http.X-Purged + " objects"));
    }

    # The metrics are for the operator's scraper, which should reach imgrelay's admin listener
    # directly; nobody on the public side gets them, whatever imgrelay's configuration.
    if (req.url ~ "^/metrics([?/]|$)") {
        return (synth(404, "Not Found"));
    }

    # Admin endpoints carry a bearer token and must reach imgrelay every time, never a cache.
    if (req.url ~ "^/(rewrite|purge)([?/]|$)") {
        return (pass);
    }
    # Health checks report on imgrelay itself, not on a cached answer.
    if (req.url ~ "^/(healthz|readyz)([?/]|$)") {
        return (pass);
    }

    if (req.method != "GET" && req.method != "HEAD") {
        # OPTIONS preflights and anything else imgrelay answers itself (204 or 405).
        return (pass);
    }

    # Image URLs: imgrelay ignores cookies and credentials, so they must neither reach it nor
    # stop caching (Varnish's built-in rules pass any request carrying them).
    unset req.http.Cookie;
    unset req.http.Authorization;

    # Hotlink protection (`security.allowed_referers`) is decided by imgrelay alone, from the
    # Referer it receives, and its answers then say `Vary: Referer`: Varnish keeps a copy per
    # Referer value and hands it only to requests with that value, which imgrelay answered
    # alike (hits, grace and stale copies, 304s). Readers' Referers name their pages; only the
    # host matters to the rule, so a Referer that is plainly an http(s) URL with a host of
    # letters, digits, dots and hyphens is reduced to `http://{host}/` (one copy per site, not
    # per page). The reduction keeps the host as a browser reads it (port dropped, case
    # folded); anything else (userinfo, backslashes, percent signs, IDN, `null`) goes to
    # imgrelay as sent and is judged as sent.
    if (req.http.Referer ~ "^(?i)https?://[a-z0-9.-]+(:[0-9]{0,4})?([/?#]|$)") {
        set req.http.Referer = "http://" + std.tolower(regsub(req.http.Referer,
            "^(?i)https?://([a-z0-9.-]+).*$", "\1")) + "/";
    }

    # Accept matters only where imgrelay negotiates (`output=auto`, which it answers with
    # `Vary: Accept`). There it is reduced to one of three buckets, chosen as imgrelay
    # chooses: AVIF if the client lists it, else WebP if it lists that, else anything (the
    # source's own format), whatever order or weights the client gives; an entry with q=0 is
    # a refusal and is removed first. Everywhere else Accept is dropped, so a stray `Vary`
    # could never split the cache.
    if (req.url ~ "[?&]output=auto(&|$)") {
        set req.http.Accept = regsuball(req.http.Accept,
            "[^,]*;\s*q=0(\.0*)?\s*(;[^,]*)?(,|$)", "");
        if (req.http.Accept ~ "(?i)(^|,)\s*image/avif\s*(;|,|$)") {
            set req.http.Accept = "image/avif";
        } else if (req.http.Accept ~ "(?i)(^|,)\s*image/webp\s*(;|,|$)") {
            set req.http.Accept = "image/webp";
        } else {
            set req.http.Accept = "*/*";
        }
    } else {
        unset req.http.Accept;
    }

    # The query string is the cache key and is kept exactly as sent: it may carry a signature
    # over its bytes, and imgrelay already answers 400 to unknown parameters, so no spelling
    # can multiply entries. No sorting, no decoding.
    return (hash);
}

sub vcl_hash {
    # The full URL alone: imgrelay answers the same whatever Host the client used.
    hash_data(req.url);
    return (lookup);
}

sub vcl_hit {
    # An expired object is kept for the whole stale-if-error window (its grace), so it can be
    # served while imgrelay is down. While imgrelay is up, a copy older than its
    # stale-while-revalidate window is not served: look it up again without grace, which
    # fetches (revalidating with the ETag) and waits for the answer.
    if (obj.ttl < 0s && req.restarts == 0 && std.healthy(req.backend_hint)
        && obj.ttl + std.duration(obj.http.X-Imgrelay-Swr, 0s) < 0s) {
        set req.http.X-Imgrelay-Revalidate = "1";
        return (restart);
    }
}

sub vcl_backend_fetch {
    # X-Imgrelay-Revalidate stays on the backend request, where vcl_backend_response reads it
    # (imgrelay ignores it); the other marker has no use there.
    unset bereq.http.X-Imgrelay-Stale-Ok;
}

sub vcl_backend_response {
    # The request id belongs to the request that caused the fetch: it is not stored.
    unset beresp.http.X-Request-Id;

    # A 5xx while a stale copy exists (a background refresh, or the revalidation above) is
    # dropped, so the stale copy stays and is served.
    if (beresp.status >= 500 && (bereq.is_bgfetch || bereq.http.X-Imgrelay-Revalidate)) {
        return (abandon);
    }

    # What imgrelay marks `no-store` (errors, redirects) is not stored at all: no object, no
    # hit-for-miss marker, nothing kept. Each such answer would otherwise be an object kept
    # for a week, and a stored 403 would be served to a Referer imgrelay allows.
    if (beresp.http.Cache-Control ~ "(?i)(^|,)\s*(no-store|private)\s*(,|$)") {
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    # A negative answer (upstream 404/410, not an image) lives exactly its `max-age`
    # (`cache.negative_ttl`): no grace, nothing kept to revalidate.
    if (beresp.status != 200) {
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        return (deliver);
    }

    # TTL: Varnish takes it from imgrelay's Cache-Control max-age, which is what is left of
    # the image's freshness (imgrelay sends no Age, so it is not subtracted twice). Grace: the
    # longer of stale-while-revalidate and stale-if-error, so a copy can outlive an outage;
    # vcl_hit above limits it to stale-while-revalidate while imgrelay is healthy.
    if (beresp.http.Cache-Control ~ "stale-while-revalidate=[0-9]+") {
        set beresp.http.X-Imgrelay-Swr = regsub(beresp.http.Cache-Control,
            ".*stale-while-revalidate=([0-9]+).*", "\1s");
    } else {
        set beresp.http.X-Imgrelay-Swr = "0s";
    }
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            ".*stale-if-error=([0-9]+).*", "\1s"), 0s);
    }
    if (std.duration(beresp.http.X-Imgrelay-Swr, 0s) > beresp.grace) {
        set beresp.grace = std.duration(beresp.http.X-Imgrelay-Swr, 0s);
    }

    # Past ttl + grace the object is no longer served but kept a while longer, so the next
    # fetch sends If-None-Match with its ETag and a 304 refreshes it without a body.
    set beresp.keep = 7d;
    return (deliver);
}

sub vcl_backend_error {
    # imgrelay unreachable while a stale copy exists: keep serving the copy.
    if (bereq.is_bgfetch || bereq.http.X-Imgrelay-Revalidate) {
        return (abandon);
    }
}

sub vcl_synth {
    # The revalidation was abandoned (5xx, or imgrelay down): serve the stale copy instead.
    if (resp.status == 503 && req.http.X-Imgrelay-Revalidate && req.restarts == 1) {
        set req.http.X-Imgrelay-Stale-Ok = "1";
        return (restart);
    }
    set resp.http.X-Request-Id = req.http.X-Request-Id;
}

sub vcl_deliver {
    # The surrogate key and the internal marker are for Varnish only.
    unset resp.http.xkey;
    unset resp.http.X-Imgrelay-Swr;
    # A copy Varnish served from its cache says so: the X-Cache stored with it told where
    # imgrelay found the image when Varnish fetched it, which is no longer the answer's story.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT-CDN";
    }
    set resp.http.X-Request-Id = req.http.X-Request-Id;
}
