import 'reflect-metadata';
import { runTenantsCli } from './tenants-cli';

// `npm run tenants -- <move|moves|wait|cancel> …`; everything but process wiring is in tenants-cli.ts.
// The first Ctrl-C stops waiting (the move goes on), a second one ends the process at once.
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
});

runTenantsCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, signal: interrupt.signal })
  // Exit rather than drain the event loop: after an interrupted wait this process may hold a
  // move's lease, and ending it is what hands the move to another executor.
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
