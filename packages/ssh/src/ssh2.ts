// ssh2 is CommonJS without named-export hints: Node's ESM loader cannot see `Server` or `Client` as named
// imports, so the package is loaded once, here, through its default export.
import ssh2 from 'ssh2';

export const { Client, Server, utils } = ssh2;
