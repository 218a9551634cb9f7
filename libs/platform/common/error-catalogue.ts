import { ApiException } from './api.exception';
import type { ApiErrorMap } from './openapi.decorators';

export interface ErrorCatalogue<C extends string> {
  /** The error `code` answers, with its status from the catalogue. */
  error(code: C, message: string, headers?: Record<string, string>): ApiException;
  /** `@ApiErrors(errors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
  errors(...codes: C[]): ApiErrorMap;
}

/**
 * A lib's error codes with their HTTP statuses, kept in one table (its `<lib>.errors.ts`), and the
 * two functions every lib derived from such a table by hand: raise one, list some for OpenAPI.
 */
export function errorCatalogue<C extends string>(status: Readonly<Record<C, number>>): ErrorCatalogue<C> {
  return {
    error: (code, message, headers = {}) => new ApiException(status[code], code, message, headers),
    errors: (...codes) => {
      const map: Record<number, C[]> = {};
      for (const code of codes) (map[status[code]] ??= []).push(code);
      return map;
    },
  };
}
