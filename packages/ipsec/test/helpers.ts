import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IP, inNetns, type Lab, type LabSide, labMissing } from '../../../test-support/ipsec-lab.mjs';
import type { ConnectionOptions } from '../src/index.js';
import type { LabPki } from './pki.js';

const PEER = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));

/** Under CI=true a missing tool fails the suite; elsewhere (not root, no charon) it is skipped. */
export function labUnavailable(): string | undefined {
  const missing = labMissing();
  if (missing && process.env.CI === 'true') throw new Error(`ipsec lab: ${missing}`);
  return missing;
}

/** The connection each side loads: named `net`, its inner address to the peer's. */
export function connectionFor(lab: Lab, pki: LabPki, me: 'a' | 'b'): ConnectionOptions {
  const peer = me === 'a' ? 'b' : 'a';
  return {
    name: 'net',
    localAddress: lab[me].outer,
    remoteAddress: lab[peer].outer,
    local: { cert: pki[me].cert, key: pki[me].key },
    remote: { id: `${peer}.ipsec.test`, ca: pki.ca.cert },
    localTs: [`${lab[me].inner}/32`],
    remoteTs: [`${lab[peer].inner}/32`],
  };
}

/** A @sock/core echo server inside a side's namespace, on its inner address. */
export async function echoServer(side: LabSide): Promise<{ port: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(
    IP,
    ['netns', 'exec', side.netns, process.execPath, PEER, 'serve', side.inner],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`echo server exited ${code}: ${err}`)));
  });
  return {
    port,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** One line over @sock/core from a side's namespace: the reply, or the error code it met. */
export async function echoFrom(
  side: LabSide,
  host: string,
  port: number,
  payload: string,
): Promise<{ reply?: string; error?: string; cause?: string }> {
  const { stdout } = await inNetns(side, [process.execPath, PEER, 'echo', host, String(port), payload]);
  return JSON.parse(stdout.trim().split('\n').pop()!) as { reply?: string; error?: string };
}

/** One UDP datagram from a side's namespace (needs no answer, so a leak shows even with nobody listening). */
export async function datagramFrom(
  side: LabSide,
  host: string,
  payload: string,
): Promise<{ sent?: boolean; error?: string }> {
  const { stdout } = await inNetns(side, [process.execPath, PEER, 'udp', host, '9', payload]);
  return JSON.parse(stdout.trim().split('\n').pop()!) as { sent?: boolean; error?: string };
}

/** Packets of a capture that are neither IKE (UDP 500) nor ESP-in-UDP (UDP 4500). */
export function notIkeOrEsp(lines: string[]): string[] {
  return lines.filter((l) => !/\.(500|4500) > [\d.]+\.(500|4500): /.test(l));
}
