// Baseline for the worker scaling: core's hand-written node:net echo server (bench/raw-server.mjs) on N
// node:cluster workers, as a careful user would run it. Prints {"port"} once every worker listens.
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';

const workers = Number(process.argv[2] ?? 2);
cluster.setupPrimary({
  exec: fileURLToPath(new URL('../../../packages/core/bench/raw-server.mjs', import.meta.url)),
  silent: true,
});
let listening = 0;
cluster.on('listening', (_w, address) => {
  if (++listening === workers) process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
for (let i = 0; i < workers; i++) cluster.fork();
const stop = () => {
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
