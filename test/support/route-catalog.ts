import type { INestApplication, Type } from '@nestjs/common';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import { ModulesContainer } from '@nestjs/core';
import { getMetadataStorage } from 'class-validator';
import { ROUTE_ACCESS, type RouteAccess } from '#strata/auth';

/**
 * What the running app serves, read at runtime so that tests covering "every route" stay complete
 * by construction: Express's router says which routes exist, Nest's metadata says who may call them
 * and which DTO classes their query and body are validated against, and class-validator's metadata
 * says which fields those DTOs have and what each one must be.
 */

/**
 * "METHOD /path" of every route Express would serve, from its router stack; Nest's own catch-all
 * (`/{*splat}`, which answers the JSON 404 for paths no controller serves) is left out.
 */
export function registeredRoutes(app: INestApplication): string[] {
  const express = app.getHttpAdapter().getInstance() as { router?: { stack: RouterLayer[] }; _router?: { stack: RouterLayer[] } };
  const stack = (express.router ?? express._router)?.stack ?? [];
  return stack
    .flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path}`) : []))
    .filter((name) => !name.includes('*'));
}

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

/** One validation rule of a DTO field, as class-validator records it (`isString`, `length` [1, 200], `isIn` [[…]]). */
export interface FieldRule {
  name: string;
  constraints: unknown[];
  each: boolean;
}

export interface DtoField {
  name: string;
  /** `@IsOptional()` or `@ValidateIf(…)`: the field may be left out. */
  optional: boolean;
  rules: FieldRule[];
}

export interface CatalogRoute {
  /** "METHOD /path", as Express names it. */
  name: string;
  method: string;
  path: string;
  access: RouteAccess;
  /** Path parameters in order (`/projects/:id/tasks` → ['id']). */
  params: string[];
  /** Fields of the `@Query()` DTO, of the `@Body()` DTO; undefined when the handler reads none. */
  query?: DtoField[];
  body?: DtoField[];
  /** The handler takes an `@UploadedFile()`: a multipart route. */
  upload: boolean;
}

/** The rules class-validator would apply to each property of `dto`, inherited ones included. */
export function dtoFields(dto: Type<unknown>): DtoField[] {
  const storage = getMetadataStorage();
  const byName = new Map<string, DtoField>();
  for (const m of storage.getTargetValidationMetadatas(dto, '', true, false)) {
    const field = byName.get(m.propertyName) ?? { name: m.propertyName, optional: false, rules: [] };
    byName.set(m.propertyName, field);
    if (m.type === 'conditionalValidation') {
      field.optional = true;
      continue;
    }
    const name = m.name ?? storage.getTargetValidatorConstraints(m.constraintCls)[0]?.name ?? m.type;
    field.rules.push({ name, constraints: m.constraints ?? [], each: Boolean(m.each) });
  }
  return [...byName.values()];
}

const HTTP_METHODS: Partial<Record<RequestMethod, string>> = {
  [RequestMethod.GET]: 'GET',
  [RequestMethod.POST]: 'POST',
  [RequestMethod.PUT]: 'PUT',
  [RequestMethod.PATCH]: 'PATCH',
  [RequestMethod.DELETE]: 'DELETE',
  [RequestMethod.OPTIONS]: 'OPTIONS',
  [RequestMethod.HEAD]: 'HEAD',
};

const joinPath = (...parts: string[]) => `/${parts.flatMap((p) => p.split('/')).filter(Boolean).join('/')}`;

/**
 * Every route Express serves: those of Nest controllers with access, parameters and DTO fields,
 * and those mounted on Express directly (public, no DTOs).
 */
export function routeCatalog(app: INestApplication): CatalogRoute[] {
  const routes = new Map<string, CatalogRoute>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type<unknown> | null;
      if (!controller?.prototype) continue;
      const base = ([] as string[]).concat(Reflect.getMetadata(PATH_METADATA, controller) ?? '')[0];
      for (const key of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = controller.prototype[key];
        if (key === 'constructor' || typeof handler !== 'function') continue;
        const sub = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
        const method = HTTP_METHODS[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
        if (sub === undefined || !method) continue;
        const path = joinPath(base, ([] as string[]).concat(sub)[0]);
        const access: RouteAccess =
          Reflect.getMetadata(ROUTE_ACCESS, handler) ?? Reflect.getMetadata(ROUTE_ACCESS, controller) ?? 'tenant';
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, key) ?? {}) as Record<string, { index: number; data?: unknown }>;
        const types = (Reflect.getMetadata('design:paramtypes', controller.prototype, key) ?? []) as Array<Type<unknown> | undefined>;
        const argsOf = (kind: RouteParamtypes) => Object.entries(args).filter(([k]) => k.split(':')[0] === String(kind)).map(([, a]) => a);
        const argOf = (kind: RouteParamtypes) => argsOf(kind)[0];
        // `@Query() dto: ListQuery` contributes the DTO's fields; `@Query('token') token` one field, unvalidated.
        const dtoOf = (kind: RouteParamtypes): DtoField[] | undefined => {
          const found = argsOf(kind);
          if (!found.length) return undefined;
          return found.flatMap((arg) => {
            if (typeof arg.data === 'string') return [{ name: arg.data, optional: true, rules: [] }];
            const type = types[arg.index];
            return type && type !== Object ? dtoFields(type) : [];
          });
        };
        const name = `${method} ${path}`;
        routes.set(name, {
          name,
          method,
          path,
          access,
          params: [...path.matchAll(/:(\w+)/g)].map((m) => m[1]),
          query: dtoOf(RouteParamtypes.QUERY),
          body: dtoOf(RouteParamtypes.BODY),
          upload: argOf(RouteParamtypes.FILE) !== undefined,
        });
      }
    }
  }
  const served = registeredRoutes(app);
  // Mounted on Express directly (the OpenAPI document and its UI): no guard, no DTOs, so public.
  for (const name of served.filter((r) => !routes.has(r))) {
    const [method, path] = name.split(' ');
    routes.set(name, { name, method, path, access: 'public', params: [...path.matchAll(/:(\w+)/g)].map((m) => m[1]), upload: false });
  }
  return [...routes.values()].filter((r) => served.includes(r.name)).sort((a, b) => a.name.localeCompare(b.name));
}
