import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, delimited, type SockServer, text } from '@sock/core';
import { sshKeygen, tempDir } from '../../../test-support/openssh.mjs';
import { createSshServer, generateSshKey, type SshServerOptions, sshIdentity } from '../src/index.js';

/** A sock SSH server routing `echo:7` to a line echo service that names the SSH identity it saw. */
export async function startSockSsh(extra: Partial<SshServerOptions> = {}) {
  const { dir, cleanup } = tempDir('sock-sshd');
  const host = generateSshKey('sock-test-host');
  const clientKeyPub = await sshKeygen(join(dir, 'client'));
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${clientKeyPub}\n`);
  const echo: SockServer<string, string> = createServer<string, string>({
    framing: delimited({ maxFrameBytes: 4096 }),
    codec: text(),
    async handler(conn) {
      const id = sshIdentity(conn);
      for await (const line of conn)
        await conn.send(`${id?.user} ${id?.fingerprint} ${conn.transport} ${line}`);
    },
  });
  const server = createSshServer({
    hostKeys: [host.privateKey],
    authorizedKeys,
    routes: [{ host: 'echo', port: 7, server: echo }],
    ...extra,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${host.publicKey}\n`);
  return {
    server,
    echo,
    port,
    dir,
    host,
    clientKey: join(dir, 'client'),
    clientKeyPub,
    authorizedKeys,
    knownHosts,
    async stop() {
      await server.close({ drainMs: 200 });
      await echo.close({ drainMs: 200 });
      cleanup();
    },
  };
}

export { runSsh } from '../../../test-support/openssh.mjs';
