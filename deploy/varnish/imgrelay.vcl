# Varnish 7.1+ in front of one imgrelay (Debian: `varnish`, plus `varnish-modules` for vmod
# xkey). Install it with `imgrelay-common.vcl` beside it (the caching rules, shared with
# `fleet.vcl`) and start it with imgrelay's `cdn.purge_token` in its environment, for example:
#
#   IMGRELAY_CDN__PURGE_TOKEN=… varnishd -F -a :80 -f /etc/varnish/imgrelay.vcl -s malloc,1G
#
# This file names the backend and who may purge; everything else is in the common file.

vcl 4.1;

# imgrelay's main listener (`server.listen`). The probe asks /healthz, which answers while the
# process is alive; when it fails, Varnish serves stale copies for the whole stale-if-error
# window instead of trying the backend on every request. `.initial = 3` starts healthy, so the
# first requests after a restart of Varnish are not refused while the first probes run.
backend imgrelay {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 2s;
    # A cold transform (decode, resize, AVIF encode) can take seconds; imgrelay bounds its own
    # work with upstream.timeout and transform.timeout, so this only catches a hung process.
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 10s;
    .probe = {
        .url = "/healthz";
        .interval = 1s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
        .initial = 3;
    }
}

# Who may send PURGE. imgrelay's /purge sends `PURGE /` with `xkey: {g}` from its own address
# (`cdn.purge_urls`); list the addresses of your imgrelay replicas here. An address is not
# enough: the PURGE must also carry the purge token (see imgrelay-common.vcl).
acl purgers {
    "127.0.0.1";
    "::1";
}

# The caching rules: request ids, PURGE by xkey, Accept buckets, TTL, grace and stale copies.
include "./imgrelay-common.vcl";
