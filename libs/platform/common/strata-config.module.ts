import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { loadStrataConfig, STRATA_CONFIG, type StrataConfig } from './strata.config';

/**
 * @nestjs/config loads `.env` (when present) into the environment; STRATA_CONFIG is the typed,
 * validated view of it that the rest of the code injects. Tests and the bench pass a config.
 */
@Global()
@Module({})
export class StrataConfigModule {
  static forRoot(config?: StrataConfig): DynamicModule {
    return {
      module: StrataConfigModule,
      imports: [ConfigModule.forRoot({ isGlobal: true, cache: true, ignoreEnvFile: Boolean(config) })],
      providers: [{ provide: STRATA_CONFIG, useFactory: () => config ?? loadStrataConfig(process.env) }],
      exports: [STRATA_CONFIG],
    };
  }
}
