import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { StopTracing } from './tracing';

const STOP_TRACING = Symbol('STOP_TRACING');

@Injectable()
class TracingShutdownHook implements OnApplicationShutdown {
  constructor(@Inject(STOP_TRACING) private readonly stop: StopTracing) {}

  onApplicationShutdown(): Promise<void> {
    return this.stop();
  }
}

/**
 * Flushes and stops tracing when the app shuts down (signal or app.close()). For the API: Nest
 * closes the HTTP server before it calls shutdown hooks, so every request's span has ended by then.
 * `createApp(config, { extra: { imports: [TracingShutdownModule.forRoot(stop)] } })`.
 */
@Module({})
export class TracingShutdownModule {
  static forRoot(stop: StopTracing): DynamicModule {
    return { module: TracingShutdownModule, providers: [{ provide: STOP_TRACING, useValue: stop }, TracingShutdownHook] };
  }
}
