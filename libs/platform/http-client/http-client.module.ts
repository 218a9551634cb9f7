import { Global, Module, type DynamicModule } from '@nestjs/common';
import { HTTP_CLIENT_OPTIONS, resolveHttpClientOptions, type HttpClientOptions } from './http-client.options';
import { TenantHttpClient } from './tenant-http.client';

/**
 * The tenant-aware outbound HTTP client. forRoot() once per app (API and worker alike); global, so
 * domain modules inject TenantHttpClient without importing it. Needs CLS and TenancyModule.
 */
@Global()
@Module({})
export class HttpClientModule {
  static forRoot(options: HttpClientOptions = {}): DynamicModule {
    return {
      module: HttpClientModule,
      providers: [{ provide: HTTP_CLIENT_OPTIONS, useFactory: () => resolveHttpClientOptions(options) }, TenantHttpClient],
      exports: [HTTP_CLIENT_OPTIONS, TenantHttpClient],
    };
  }
}
