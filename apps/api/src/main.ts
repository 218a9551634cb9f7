import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadStrataConfig } from '#strata/common';
import { bootstrapDatabase } from '#strata/migrator';
import { createApp } from './app.factory';
import { startEmbeddedPostgres } from './embedded-database';
import { printDemoHelp, seedDemo } from './demo-seed';

async function main(): Promise<void> {
  const logger = new Logger('Strata');
  let embedded: { stop: () => Promise<void> } | undefined;
  if (!process.env.DATABASE_URL) {
    logger.log('DATABASE_URL is unset: starting the embedded PostgreSQL under .data/pg');
    embedded = await startEmbeddedPostgres();
  }
  const config = loadStrataConfig(process.env);
  await bootstrapDatabase({
    ownerUrl: config.databaseUrl,
    appRole: config.appDbUser,
    appPassword: config.appDbPassword,
    controlRole: config.controlDbUser,
    controlPassword: config.controlDbPassword,
  });

  const app = await createApp(config);
  if (embedded) {
    const stop = embedded.stop;
    app.enableShutdownHooks();
    process.once('beforeExit', () => void stop());
  }
  await app.listen(config.port, '0.0.0.0');
  const seed = embedded ? process.env.STRATA_DEMO !== '0' : process.env.STRATA_DEMO === '1';
  if (seed) {
    await seedDemo(app);
    await printDemoHelp(app, config.port);
  }
  logger.log(`listening on :${config.port}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
