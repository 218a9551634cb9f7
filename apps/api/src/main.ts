import 'reflect-metadata';
import { Module, Controller, Get, Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClsModule, ClsService } from 'nestjs-cls';
import { hello } from '#strata/demo';

@Injectable() class Svc { constructor(readonly cls: ClsService) {} }
@Controller() class C { constructor(private s: Svc) {} @Get('x') x() { return { h: hello(), id: this.s.cls.getId() }; } }
@Module({ imports: [ClsModule.forRoot({ global: true, middleware: { mount: true, generateId: true } })], controllers: [C], providers: [Svc] })
class M {}
async function main() { const app = await NestFactory.create(M); await app.listen(3999); const r = await fetch('http://127.0.0.1:3999/x'); console.log(await r.text()); await app.close(); }
main();
