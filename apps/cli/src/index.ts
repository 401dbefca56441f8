/**
 * `sock`: a netcat-like client and server with every sock defence as a flag, the dev PKI, the firewall,
 * a load generator and a TLS checker.
 */
import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench.js';
import { certCommand } from './cert.js';
import { connectCommand } from './connect.js';
import { describeError, EXIT, ExitError, UsageError } from './errors.js';
import { fwCommand } from './fw.js';
import { ipsecCommand } from './ipsec.js';
import { listenCommand } from './listen.js';
import { sshCommand } from './ssh-command.js';
import { tlsCheckCommand } from './tls-check.js';
import { tunnelCommand } from './tunnel.js';

const program = new Command('sock')
  .description('netcat-like TCP/TLS/UDP client and server with every sock defence as a flag')
  .version('0.0.0', '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({
    outputError: (str, write) => write(`sock: ${str.replace(/^error: /, '')}`),
  });
program.addHelpText(
  'after',
  `
Exit status: 0 ok, 1 runtime error, 2 usage error. Errors are printed as "sock: <message>" on stderr.
Colours only on a terminal, never with NO_COLOR set.`,
);

listenCommand(program);
connectCommand(program);
certCommand(program);
fwCommand(program);
benchCommand(program);
tlsCheckCommand(program);
ipsecCommand(program);
tunnelCommand(program);
sshCommand(program);

function everyCommand(cmd: Command, path: string): void {
  for (const sub of cmd.commands) {
    const name = `${path} ${sub.name()}`;
    sub.exitOverride();
    sub.showHelpAfterError(`(run '${name} --help' for usage)`);
    everyCommand(sub, name);
  }
}
everyCommand(program, 'sock');

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
      return EXIT.USAGE;
    }
    if (err instanceof ExitError) return err.status;
    if (err instanceof UsageError) {
      process.stderr.write(`sock: ${err.message}\n`);
      return EXIT.USAGE;
    }
    process.stderr.write(`sock: ${describeError(err)}\n`);
    return EXIT.RUNTIME;
  }
}

const status = await main(process.argv);
process.exitCode = status;
// Whatever is still open (stdin, timers of a closed server) must not keep the process alive.
setImmediate(() => process.exit(status));
