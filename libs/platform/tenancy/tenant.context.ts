import { Injectable } from '@nestjs/common';
import { ClsService, type ClsStore } from 'nestjs-cls';
import { randomUUID } from 'node:crypto';
import type { TenantPlacement, TenantScope, TenantUnitScope } from './tenant.types';
import type { UnitCancellation } from './backend.cancel';

/** A scope as callers hand it to run(): the request id is optional there. */
export type ScopeInput = TenantScope extends infer S ? (S extends TenantScope ? Omit<S, 'requestId'> & { requestId?: string } : never) : never;

export interface TenantClsStore extends ClsStore {
  scope?: TenantScope;
  /** Set by the HTTP edge: the request's client left, so its units are cancelled on the server. */
  cancellation?: UnitCancellation;
}

export class MissingTenantContextError extends Error {
  constructor(what: string) {
    super(
      `no tenant context: ${what} needs a tenant. In HTTP code this means the route skipped the tenant guard; ` +
        `elsewhere wrap the call in tenantContext.run(scope, fn) (or runAsSystem(fn) for cross-tenant work).`,
    );
    this.name = 'MissingTenantContextError';
  }
}

/** The single typed CLS store for the tenant. Entered with run(), never enterWith(). */
@Injectable()
export class TenantContext {
  // Untyped service, typed accessors below: ClsService's deep key types explode on EntityManager.
  constructor(private readonly cls: ClsService) {}

  /** Runs `fn` inside a fresh context holding `scope`; the caller's context is untouched. */
  run<T>(scope: ScopeInput, fn: () => T): T {
    const full = { ...scope, requestId: scope.requestId ?? randomUUID() } as TenantScope;
    return this.cls.run({ ifNested: 'override' }, () => {
      this.cls.set('scope', full);
      return fn();
    });
  }

  /**
   * Binds `scope` into the context the request already runs in (the CLS middleware entered it with
   * run()). Only the tenant guard calls this; it refuses to replace a tenant once set.
   */
  bind(scope: TenantScope): void {
    const store = this.store();
    if (!store) throw new MissingTenantContextError('binding a tenant');
    const existing = store.scope;
    if (existing && existing.tenant.id !== scope.tenant.id) {
      throw new Error('tenant context already holds another tenant; refusing to switch tenants mid-request');
    }
    store.scope = scope;
  }

  /**
   * The same tenant, at its new placement (TenantConnectionManager, after a unit found the tenant's
   * home retired by a move): the rest of the request or job runs there too.
   */
  followPlacement(tenant: TenantPlacement): void {
    const store = this.store();
    const existing = store?.scope;
    if (!store || !existing) throw new MissingTenantContextError('following a moved tenant');
    if (existing.system || existing.tenant.id !== tenant.id) throw new Error('refusing to follow another tenant\'s placement');
    store.scope = { ...existing, tenant };
  }

  /** The current scope; throws an actionable error when there is none. */
  require(what = 'this operation'): TenantScope {
    const scope = this.store()?.scope;
    if (!scope) throw new MissingTenantContextError(what);
    return scope;
  }

  /**
   * The current scope, which must be a real tenant: the system tenant runs cross-tenant work but owns
   * no `resource` (rows, objects …) of its own, so per-tenant resources refuse it here, in one place.
   */
  requireTenant(what: string, resource: string): TenantUnitScope {
    const scope = this.require(what);
    if (scope.system) {
      throw new Error(`the system tenant has no ${resource}; enter a tenant with TenantContext.run() for each tenant it works on`);
    }
    return scope;
  }

  /** How the current request tells its units that its client has gone; none outside HTTP requests. */
  get cancellation(): UnitCancellation | undefined {
    return this.store()?.cancellation;
  }

  current(): TenantScope | undefined {
    return this.store()?.scope;
  }

  /** The current tenant's placement; the system tenant has none (use current() to tell them apart). */
  get tenant(): TenantPlacement {
    return this.requireTenant('reading the tenant', 'placement').tenant;
  }

  // The whole store in one lookup: every repository call reads the tenant, and ClsService's keyed
  // get() splits its key as a dotted path each time.
  private store(): TenantClsStore | undefined {
    return this.cls.get() as TenantClsStore | undefined;
  }
}
