import 'reflect-metadata';
import { Body, Controller, Get, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiCreatedResponse, ApiOkResponse, ApiProperty } from '@nestjs/swagger';
import { IsString } from 'class-validator';
import request from 'supertest';
import { ApiErrors, UuidPipe } from '#strata/common';
import { setupApiDocs } from './api-docs.setup';

class WidgetDto {
  @ApiProperty() @IsString() name: string;
}

@Controller('widgets')
@ApiErrors({ 404: ['shelf_not_found'] })
class WidgetsController {
  @Get(':id')
  @ApiOkResponse({ type: WidgetDto })
  @ApiErrors({ 404: ['widget_not_found'] })
  @ApiErrors({ 409: ['widget_locked'] })
  get(@Param('id', UuidPipe) id: string): WidgetDto {
    return { name: id };
  }

  @Post()
  @ApiCreatedResponse({ type: WidgetDto })
  create(@Body() body: WidgetDto): WidgetDto {
    return body;
  }
}

@Module({ controllers: [WidgetsController] })
class WidgetsModule {}

async function appWith(openapiEnabled: boolean): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(WidgetsModule, { logger: false });
  setupApiDocs(app, { openapiEnabled, baseDomain: undefined });
  await app.init();
  return app;
}

describe('setupApiDocs', () => {
  it('serves neither /openapi.json nor /docs when OPENAPI_ENABLED is off', async () => {
    const app = await appWith(false);
    try {
      await request(app.getHttpServer()).get('/openapi.json').expect(404);
      await request(app.getHttpServer()).get('/docs').expect(404);
    } finally {
      await app.close();
    }
  });

  it('serves the document with one error response per status, the codes of the controller and the route merged into its enum', async () => {
    const app = await appWith(true);
    try {
      const { body: doc } = await request(app.getHttpServer()).get('/openapi.json').expect(200);
      const get = doc.paths['/widgets/{id}'].get;
      expect(get.responses['404'].content['application/json'].schema.properties.error.enum).toEqual(['shelf_not_found', 'widget_not_found']);
      expect(get.responses['409'].content['application/json'].schema.properties.error.enum).toEqual(['widget_locked']);
      // A UUID path id: its format, and the 400 its pipe answers.
      expect(get.parameters.find((p: { name: string }) => p.name === 'id').schema).toEqual({ type: 'string', format: 'uuid' });
      // Every route: RequestShapeInterceptor refuses a query parameter it does not define.
      expect(get.responses['400'].content['application/json'].schema.properties.error.enum).toEqual(['invalid_id', 'unknown_query_parameter']);
      // A JSON body: the validation pipe's and the body parser's answers.
      const post = doc.paths['/widgets'].post;
      expect(post.responses['400'].content['application/json'].schema.properties.error.enum).toEqual([
        'body_not_object',
        'invalid_json',
        'invalid_unicode',
        'json_too_deep',
        'json_too_many_values',
        'json_too_wide',
        'unknown_query_parameter',
        'validation_failed',
      ]);
      expect(post.responses['413'].content['application/json'].schema.properties.error.enum).toEqual(['payload_too_large']);
      expect(Object.keys(post.responses).sort()).toEqual(['201', '400', '404', '413', '415', '500']);
      await request(app.getHttpServer()).get('/docs').expect(200);
    } finally {
      await app.close();
    }
  });
});
