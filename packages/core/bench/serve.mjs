// The benchmark servers' protocol with the harness: listen on a free loopback port, print {"port"},
// stop on the 'stop' message (after `onStop`) or SIGTERM.
export async function serveForBench(server, onStop = () => {}) {
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('message', async (m) => {
    if (m === 'stop') {
      await server.close({ drainMs: 1000 });
      onStop();
      process.exit(0);
    }
  });
  process.on('SIGTERM', () => process.exit(0));
}
