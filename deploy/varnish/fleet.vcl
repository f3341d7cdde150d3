# Varnish 7 in front of a fleet of imgrelay replicas that share one bucket (`[cache.shared]`),
# sharded by source (Debian: `varnish`, plus `varnish-modules` for vmod xkey). Install it
# with `imgrelay-common.vcl` beside it (the caching rules, shared with `imgrelay.vcl`), edit the
# replica list below, and start it with, for example:
#
#   IMGRELAY_CDN__PURGE_TOKEN=… varnishd -F -a :80 -f /etc/varnish/fleet.vcl -s malloc,1G
#
# Why shard: a source's variants (every width, every format) are all made from its original.
# Sending them all to one replica means the original is fetched, decoded and kept by one
# replica only, instead of by every replica a round-robin balancer happens to pick. The shard
# director is consistent hashing: adding or removing a replica moves only that replica's share
# of sources, so the rest of the fleet keeps its warm caches.

vcl 4.1;

import directors;

# Each replica's readiness: imgrelay answers /readyz with 200 while its cache directory is
# writable and it is not shutting down. A replica that is stopped or dies fails its probes and
# its sources go to the next replica on the ring; until the probe notices, a request it does
# not answer is retried there (vcl_backend_error below). `.initial = .threshold` starts every
# replica healthy, so a restart of Varnish does not refuse requests while the first probes run.
probe imgrelay_ready {
    .url = "/readyz";
    .interval = 1s;
    .timeout = 1s;
    .window = 5;
    .threshold = 3;
    .initial = 3;
}

# Who may send PURGE: imgrelay's /purge sends `PURGE /` with `xkey: {g}` to `cdn.purge_urls`
# from the replica that received it; list every replica's address. The PURGE must also carry
# the purge token (`IMGRELAY_CDN__PURGE_TOKEN` in varnishd's environment, see
# imgrelay-common.vcl).
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.11";
    "10.0.0.12";
}

sub vcl_init {
    new fleet = directors.shard();
    call fleet_replicas;
    fleet.reconfigure();
}

# BEGIN replicas: one backend per imgrelay (`server.listen` of each), each added to the ring in
# `fleet_replicas`. Give each replica the others' base URLs as `server.peers`, so a /purge
# on any of them reaches all. Names are the ring's identities: keep a replica's
# name when its address changes, or its share of sources moves to other replicas.
backend replica_1 {
    .host = "10.0.0.11";
    .port = "8080";
    .connect_timeout = 2s;
    # A cold transform can take seconds; imgrelay bounds its own work, so this only catches a
    # hung process.
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 10s;
    .probe = imgrelay_ready;
}

backend replica_2 {
    .host = "10.0.0.12";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 10s;
    .probe = imgrelay_ready;
}

sub fleet_replicas {
    fleet.add_backend(replica_1);
    fleet.add_backend(replica_2);
}
# END replicas

sub vcl_recv {
    # The director itself, resolved per fetch below. `std.healthy()` of it (the stale-copy
    # rule of the common file) is true while any replica is healthy.
    set req.backend_hint = fleet.backend(resolve=LAZY);
}

sub vcl_backend_fetch {
    # The shard key is the source as the client spelled it: the raw `url` parameter of the
    # transform form, or the raw query of the pass-through form (SPEC §2, §7). Every variant
    # of one source then goes to one replica, which fetches the original once; two spellings
    # of one source may land on two replicas, and the shared bucket covers that. Requests
    # without a source (health checks) are keyed on their URL.
    if (bereq.url ~ "^[^?]*\?(?i)https?://") {
        set bereq.http.X-Imgrelay-Shard = regsub(bereq.url, "^[^?]*\?", "");
    } else if (bereq.url ~ "^[^?]*\?(.*&)?url=") {
        set bereq.http.X-Imgrelay-Shard =
            regsub(bereq.url, "^[^?]*\?(.*&)?url=([^&]*).*$", "\2");
    } else {
        set bereq.http.X-Imgrelay-Shard = bereq.url;
    }
    # The first healthy replica on the ring from the key: its owner, or while the owner's
    # probe fails the next one. On a retry (below) the healthy replica after the one that
    # failed (`healthy=ALL` counts `alt` among the healthy replicas only).
    set bereq.backend = fleet.backend(by=KEY, key=fleet.key(bereq.http.X-Imgrelay-Shard),
        alt=bereq.retries, healthy=ALL);
    unset bereq.http.X-Imgrelay-Shard;
}

sub vcl_backend_error {
    # The chosen replica did not answer (refused, reset, timed out) before its probe noticed:
    # try the next replica on the ring once. It answers from the shared bucket when the
    # source is there, so a replica's death costs no origin fetch. Only then do the common
    # rules serve a stale copy or an error.
    if (bereq.retries == 0) {
        return (retry);
    }
}

# The caching rules: request ids, PURGE by xkey, Accept buckets, TTL, grace and stale copies.
include "./imgrelay-common.vcl";
