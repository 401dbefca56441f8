// A guarded echo server on every core: node:cluster workers share one listener, and guards' state
// lives in the primary, so "20 connections per IP" means 20 across all workers. SIGTERM/SIGINT drain and
// stop every worker; a crashed worker is restarted after 100 ms, doubled per crash, and more than 5
// crashes a minute stop the service. Run: PORT=7000 node cluster-server.mjs
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createServer, lengthPrefixed } from '@sock/core';
import { createClusterStore, createGuards, serveClusterPrimary } from '@sock/guards';

const PORT = Number(process.env.PORT ?? 7000);
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());

if (cluster.isPrimary) {
  const shared = await serveClusterPrimary(); // guards' state for every worker (a bounded memory store)
  let stopping = false;
  let crashes = [];
  let listening = 0;
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  cluster.on('listening', (worker, address) => {
    console.log(`worker ${worker.process.pid} listening`);
    if (++listening === WORKERS) console.log(`listening on 127.0.0.1:${address.port}`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) shared.close(); // nothing keeps us alive now
      return;
    }
    const now = Date.now();
    crashes = [...crashes.filter((t) => t > now - 60_000), now];
    if (crashes.length > 5) {
      console.error('workers crash too often: stopping');
      process.exitCode = 1;
      stop();
      return;
    }
    const delay = Math.min(5000, 100 * 2 ** (crashes.length - 1));
    console.error(`worker ${worker.process.pid} died (${signal ?? code}); restarting in ${delay} ms`);
    setTimeout(() => stopping || cluster.fork(), delay);
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork();
} else {
  const guards = createGuards(
    { connections: { perKey: 20 }, timeouts: { idle: '30s', handshake: '10s' } },
    // A decision waits up to 500 ms for the primary (default 50 ms), then this worker decides alone.
    { store: await createClusterStore({ timeout: '500ms' }) },
  );
  const server = createServer({
    framing: lengthPrefixed(),
    plugins: [guards.plugin],
    onMessage: (message, conn) => void conn.send(message),
  });
  process.once('SIGTERM', async () => {
    await server.close({ drainMs: 5000 }); // finish what is in flight, then close
    guards.close();
    process.exit(0);
  });
  await server.listen({ host: '127.0.0.1', port: PORT }); // one listener, served by every worker
}
