import { ApiException } from '#strata/common';

/** `"<status> <code>"` of the ApiException a promise rejects with; anything else fails the test. */
export async function apiError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiException) return `${err.getStatus()} ${err.code}`;
    throw err;
  }
  throw new Error('expected an ApiException');
}
