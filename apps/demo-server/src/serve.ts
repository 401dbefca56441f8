/** `pnpm demo:serve`: the chat server, kept running until SIGINT/SIGTERM, then drained. */
import { createChatServer } from './chat-server.js';

const port = Number(process.env.PORT ?? 7000);
const server = createChatServer();
const address = await server.listen({ host: process.env.HOST ?? '127.0.0.1', port });
console.log(`sock demo chat listening on ${address.address}:${address.port}`);
console.log(
  `connect with: pnpm sock connect ${address.address} ${address.port}   (JSON lines: {"type":"hello","name":"me"})`,
);
const stop = async () => {
  await server.close({ drainMs: 3000 });
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
