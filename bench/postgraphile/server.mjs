// PostGraphile 5 on the benchmark database, as bench/run --with-postgraphile starts it:
// DATABASE_URL, listening on POSTGRAPHILE_ADDR (host:port), WORKERS processes sharing the port
// through node:cluster (PostGraphile itself runs in one process).
import cluster from "node:cluster";
import { createServer } from "node:http";

import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const [host, port] = (process.env.POSTGRAPHILE_ADDR ?? "127.0.0.1:18181").split(":");
const workers = Number(process.env.WORKERS ?? 2);

if (cluster.isPrimary && workers > 1) {
  for (let index = 0; index < workers; index += 1) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [
      makePgService({
        connectionString: process.env.DATABASE_URL,
        schemas: ["public"],
        // 32 connections in all, as many as wrk holds open.
        poolConfig: { max: Math.ceil(32 / workers) },
      }),
    ],
    grafserv: { graphqlPath: "/graphql", watch: false },
    grafast: { explain: false },
  };
  const instance = postgraphile(preset);
  const serv = instance.createServ(grafserv);
  const server = createServer();
  server.keepAliveTimeout = 60_000;
  await serv.addTo(server);
  server.listen(Number(port), host, () => {
    console.error(`PostGraphile listening on http://${host}:${port}/graphql (pid ${process.pid})`);
  });
}
