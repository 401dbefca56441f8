import { connect } from '@sock/core';
import type { sshTransport } from '../src/index.js';

/** Send `payload` to the echo server on 127.0.0.1:`port` through `transport` and return its reply. */
export async function echoThrough(
  transport: ReturnType<typeof sshTransport>,
  port: number,
  payload: string,
): Promise<string> {
  const conn = await connect({ host: '127.0.0.1', port, transport });
  await conn.send(Buffer.from(payload));
  for await (const m of conn) {
    await conn.close();
    return Buffer.from(m).toString();
  }
  throw new Error('no reply');
}
