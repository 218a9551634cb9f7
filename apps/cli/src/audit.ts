import 'reflect-metadata';
import { runAuditCli } from './audit-cli';

// `npm run audit -- verify`; everything but process wiring is in audit-cli.ts.
runAuditCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr })
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
