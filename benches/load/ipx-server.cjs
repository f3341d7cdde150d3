// ipx v3 (sharp) as a plain Node HTTP server for the load harness.
// Environment: IPX_DIR (the folder whose node_modules holds ipx@3), HOST, PORT, ORIGIN_HOST.
// Sources are fetched over HTTP from ORIGIN_HOST only. ipx keeps no result cache; libvips's
// operation cache is turned off too, so every request is a miss. Parallelism: sharp runs each
// image on libuv's thread pool (UV_THREADPOOL_SIZE, set to the core count by run.sh).
"use strict";

const http = require("node:http");

const from = { paths: [process.env.IPX_DIR] };
const { createIPX, createIPXNodeServer, ipxHttpStorage } = require(require.resolve("ipx", from));
const sharp = require(require.resolve("sharp", from));

sharp.cache(false);

const ipx = createIPX({
  storage: ipxHttpStorage({ domains: [process.env.ORIGIN_HOST] }),
});

const server = http.createServer(createIPXNodeServer(ipx));
server.listen(Number(process.env.PORT), process.env.HOST, () => {
  console.log(`ipx listening on ${process.env.HOST}:${process.env.PORT}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
