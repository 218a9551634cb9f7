import { Global, Module, RequestMethod, type DynamicModule, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { HttpObservationMiddleware } from './http-observation.middleware';
import { loggerParams } from './log.config';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { OBSERVABILITY_OPTIONS, resolveObservabilityOptions, type ObservabilityOptions } from './observability.options';

// path-to-regexp v8 form of "every path" (what nestjs-pino uses too; '*' is deprecated).
const ALL_ROUTES = { path: '{/*splat}', method: RequestMethod.ALL };

/**
 * Tenant-aware logs (nestjs-pino) and Prometheus metrics (prom-client, /metrics). Import once, after
 * ClsModule: its middleware must have entered the request's CLS context before ours runs.
 */
@Global()
@Module({})
export class ObservabilityModule implements NestModule {
  static forRoot(given: ObservabilityOptions = {}): DynamicModule {
    const options = resolveObservabilityOptions(given);
    return {
      module: ObservabilityModule,
      imports: [LoggerModule.forRoot(loggerParams(options))],
      controllers: [MetricsController],
      providers: [{ provide: OBSERVABILITY_OPTIONS, useValue: options }, MetricsService, HttpObservationMiddleware],
      exports: [MetricsService],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpObservationMiddleware).forRoutes(ALL_ROUTES);
  }
}
