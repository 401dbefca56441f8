/**
 * `sock`: a netcat-like client and server with every sock defence as a flag, the dev PKI, the firewall,
 * a load generator and a TLS checker.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench.js';
import { certCommand } from './cert.js';
import { connectCommand } from './connect.js';
import { doctorCommand } from './doctor.js';
import { describeError, EXIT, ExitError, UsageError } from './errors.js';
import { fwCommand } from './fw.js';
import { ipsecCommand } from './ipsec.js';
import { listenCommand } from './listen.js';
import { ncatArgv } from './ncat-flags.js';
import { endQuietlyOnClosedPipes } from './pipes.js';
import { sshCommand } from './ssh-command.js';
import { tlsCheckCommand } from './tls-check.js';
import { tunnelCommand } from './tunnel.js';

endQuietlyOnClosedPipes();
/** The version users installed: read from the package's own manifest (dist/ is one level below it). */
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const program = new Command('sock')
  .description('netcat-like TCP/TLS/UDP client and server with every sock defence as a flag')
  .version(version, '-V, --version')
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
doctorCommand(program);

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
    await program.parseAsync(
      ncatArgv(
        argv,
        program.commands.map((c) => c.name()),
      ),
    );
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // `--help`, `sock help` and `sock help <cmd>` asked for help: 0. Help shown because a command was
      // missing (`sock` alone) is a usage error.
      const asked = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code);
      return asked && err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
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
