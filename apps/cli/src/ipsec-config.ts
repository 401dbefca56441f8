import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import type { ConnectionOptions } from '@sock/ipsec';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './errors.js';

/** What `sock ipsec up <config>` reads: a connection, plus what the command does with it. */
export interface IpsecUpConfig {
  connection: ConnectionOptions;
  /** Install unreachable routes for remoteTs before initiating (default true). */
  failClosed: boolean;
  /** Initiate after loading (default true; false for the responding side). */
  initiate: boolean;
}

const TOP = [
  'name',
  'localAddress',
  'remoteAddress',
  'local',
  'remote',
  'localTs',
  'remoteTs',
  'mode',
  'ikeProposals',
  'espProposals',
  'ikeRekeySeconds',
  'childRekeySeconds',
  'dpdDelaySeconds',
  'startAction',
  'dangerouslyAllowWeakProposals',
  'failClosed',
  'initiate',
];
const LOCAL = ['cert', 'key', 'id'];
const MAX_CONFIG_BYTES = 256 * 1024;
const REMOTE = ['id', 'ca'];

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Read and check the shape of a config file (YAML, or JSON for `.json`). Certificate and key paths are
 * relative to the file. The values themselves are checked by @sock/ipsec, whose errors name the field;
 * either way the error reads `<file>: config.<field>: …`.
 */
export async function loadIpsecConfig(path: string): Promise<IpsecUpConfig> {
  const fail = (message: string): never => {
    throw new UsageError(`${path}: ${message}`);
  };
  let text = '';
  try {
    // A config is small: refuse a device or a huge file rather than read it into memory.
    const info = await stat(path);
    if (!info.isFile()) fail('not a regular file');
    if (info.size > MAX_CONFIG_BYTES)
      fail(`${info.size} bytes is more than a config (at most ${MAX_CONFIG_BYTES})`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    fail((err as Error).message);
  }
  let data: unknown;
  try {
    data = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    fail(`not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (!isObject(data))
    return fail(
      'config: expected an object with name, localAddress, remoteAddress, local, remote, localTs, remoteTs',
    );
  const known = (obj: Record<string, unknown>, keys: string[], where: string) => {
    for (const k of Object.keys(obj))
      if (!keys.includes(k)) fail(`${where}.${k}: unknown field (expected one of ${keys.join(', ')})`);
  };
  known(data, TOP, 'config');
  const base = dirname(resolve(path));
  const file = (v: unknown, where: string) => {
    if (typeof v !== 'string' || v.length === 0) return fail(`${where}: expected a file path`);
    return { path: isAbsolute(v) ? v : resolve(base, v) };
  };
  if (!isObject(data.local)) return fail('config.local: expected { cert, key, id? }');
  if (!isObject(data.remote)) return fail('config.remote: expected { id, ca }');
  known(data.local, LOCAL, 'config.local');
  known(data.remote, REMOTE, 'config.remote');
  const flag = (v: unknown, where: string) => {
    if (v === undefined) return true;
    if (typeof v !== 'boolean') fail(`${where}: expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const { failClosed, initiate, local, remote, ...rest } = data;
  return {
    failClosed: flag(failClosed, 'config.failClosed'),
    initiate: flag(initiate, 'config.initiate'),
    connection: {
      ...(rest as unknown as ConnectionOptions),
      local: {
        cert: file(local.cert, 'config.local.cert'),
        key: file(local.key, 'config.local.key'),
        ...(local.id === undefined ? {} : { id: local.id as string }),
      },
      remote: { id: remote.id as string, ca: file(remote.ca, 'config.remote.ca') },
    },
  };
}
