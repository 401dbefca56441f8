/**
 * `pnpm demo`: starts the chat server, then scripted clients show each defence. Prints a table of
 * scenario / expected / observed and exits 0 only if every row matched.
 */
import { connect, delimited, json, type SockEvent } from '@sock/core';
import { type ChatOut, createChatServer } from './chat-server.js';
import { printTable, runScenario, type ScenarioResult } from './scenario.js';

const events: SockEvent[] = [];
const server = createChatServer({ maxFrameBytes: 2048, observers: [(e) => events.push(e)] });
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
console.log(`sock demo: chat server listening on 127.0.0.1:${port}\n`);

const client = () =>
  connect<ChatOut, unknown>({
    port,
    framing: delimited({ maxFrameBytes: 1 << 20 }),
    codec: json(),
    timeoutMs: 3000,
  });

async function next(conn: AsyncIterable<ChatOut>): Promise<ChatOut | undefined> {
  for await (const m of conn) return m;
  return undefined;
}

const results: ScenarioResult[] = [];

results.push(
  await runScenario('two users chat', 'bob receives alice’s line', async () => {
    const alice = await client();
    const bob = await client();
    await alice.send({ type: 'hello', name: 'alice' });
    await next(alice);
    await bob.send({ type: 'hello', name: 'bob' });
    await next(bob);
    await alice.send({ type: 'say', text: 'hi bob' });
    const got = await next(bob);
    await Promise.all([alice.close(), bob.close()]);
    const ok = got?.type === 'said' && got.from === 'alice' && got.text === 'hi bob';
    return { observed: JSON.stringify(got), ok };
  }),
);

results.push(
  await runScenario('invalid message', 'error reply, connection stays open', async () => {
    const eve = await client();
    await eve.send({ type: 'shout', text: 42 });
    const reply = await next(eve);
    await eve.send({ type: 'hello', name: 'eve' });
    const welcome = await next(eve);
    await eve.close();
    const ok =
      reply?.type === 'error' && reply.code === 'ERR_SOCK_VALIDATION_FAILED' && welcome?.type === 'welcome';
    return {
      observed: `${reply?.type === 'error' ? reply.code : 'no error'}, then ${welcome?.type ?? 'nothing'}`,
      ok,
    };
  }),
);

results.push(
  await runScenario(
    'oversize message (4 KiB > 2 KiB limit)',
    'error frame, connection closed, server runs on',
    async () => {
      const mallory = await client();
      mallory.socket.write(`{"type":"say","text":"${'x'.repeat(4096)}"}\n`);
      const reply = await next(mallory);
      const info = await mallory.closed;
      const probe = await client();
      await probe.send({ type: 'hello', name: 'after' });
      const welcome = await next(probe);
      await probe.close();
      const ok =
        reply?.type === 'error' && reply.code === 'ERR_SOCK_FRAME_TOO_LARGE' && welcome?.type === 'welcome';
      return {
        observed: `${reply?.type === 'error' ? reply.code : 'no error'}, closed (${info.reason}), server answers`,
        ok,
      };
    },
  ),
);

await server.close({ drainMs: 1000 });
const rejected = events.filter((e) => e.type === 'reject').map((e) => (e.type === 'reject' ? e.reason : ''));
console.log(printTable(results));
console.log(`\nserver reported rejections: ${rejected.join(', ') || 'none'}`);
const failed = results.filter((r) => !r.ok).length;
console.log(failed === 0 ? '\nevery defence behaved as expected' : `\n${failed} scenario(s) did not match`);
process.exit(failed === 0 ? 0 : 1);
