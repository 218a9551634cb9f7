// Public API of libs/platform/rate-limits: the module (with its global interceptor), the anonymous
// routes' limits for the auth lib, and the error catalogue for OpenAPI.
export { RateLimitsModule } from './rate-limits.module';
export { RequestRateLimits } from './request.rate-limits';
// The building block, for the integration tests and any other budget shared by every instance.
export { SharedBuckets, type SharedBucket, type SharedBucketsOptions } from './shared.buckets';
export { hasToken, type BucketLimit } from './token.bucket';
export { LoginThrottle } from './login.throttle';
// For offboarding: the tenant's buckets go with it.
export { purgeTenantBuckets } from './tenant-buckets.purge';
export { RateLimitsErrorCode, rateLimitsError, rateLimitsErrors } from './rate-limits.errors';
