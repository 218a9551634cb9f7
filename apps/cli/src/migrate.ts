import 'reflect-metadata';
import { runMigrateCli } from './migrate-cli';

runMigrateCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr })
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
