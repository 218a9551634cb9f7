import { Logger } from '@nestjs/common';
import { isRedisUnavailableError, RedisMonitor } from './redis.monitor';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });

describe('RedisMonitor', () => {
  let warn: jest.SpyInstance;
  let log: jest.SpyInstance;
  let debug: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('logs one warning for an outage however many reconnect attempts fail, and one line when it is back', () => {
    const monitor = new RedisMonitor();
    const link = monitor.track('strata');
    link.ready();
    link.lost();
    expect(link.down).toBe(true);
    for (let i = 0; i < 20; i++) link.failed(refused());
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatchObject({ event: 'redis.down', connection: 'strata', reason: 'connect ECONNREFUSED 127.0.0.1:6379' });
    expect(monitor.states()).toEqual([{ name: 'strata', status: 'down', since: expect.any(Date), reason: 'connect ECONNREFUSED 127.0.0.1:6379' }]);
    link.ready();
    expect(link.down).toBe(false);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0][0]).toMatchObject({ event: 'redis.up', connection: 'strata', downMs: expect.any(Number) });
    // The next outage is a new one: warned about again.
    link.failed(refused());
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('counts a close followed by a quick reconnect, with no failed attempt, as a blip: down meanwhile, no warning', () => {
    const monitor = new RedisMonitor();
    const link = monitor.track('strata');
    link.ready();
    link.lost();
    expect(monitor.isDown('strata')).toBe(true);
    link.ready();
    expect(monitor.isDown('strata')).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
    expect(debug).toHaveBeenCalledTimes(1);
  });

  it('reports a connection that never came up as down from its first failed attempt', () => {
    const monitor = new RedisMonitor();
    const link = monitor.track('bullmq:q');
    expect(monitor.states()[0].status).toBe('connecting');
    link.lost(); // a close before the first ready is that attempt's: its error says why
    expect(link.down).toBe(false);
    link.failed(refused());
    expect(link.down).toBe(true);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('forgets connections closed for good, says nothing after shutdown began, and keeps names unique', () => {
    const monitor = new RedisMonitor();
    const a = monitor.track('strata');
    const b = monitor.track('strata');
    expect([a.name, b.name]).toEqual(['strata', 'strata#2']);
    a.ended();
    expect(monitor.states().map((s) => s.name)).toEqual(['strata#2']);
    b.ready();
    monitor.onModuleDestroy();
    b.lost();
    b.failed(refused());
    expect(warn).not.toHaveBeenCalled();
    expect(monitor.isDown('strata#2')).toBe(false);
  });
});

describe('isRedisUnavailableError', () => {
  it('tells "could not reach Redis" from a command Redis refused', () => {
    expect(isRedisUnavailableError(refused())).toBe(true);
    expect(isRedisUnavailableError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
    expect(isRedisUnavailableError(new Error('Command timed out'))).toBe(true);
    expect(isRedisUnavailableError(new Error('Connection is closed.'))).toBe(true);
    expect(isRedisUnavailableError(new Error('Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.'))).toBe(true);
    expect(isRedisUnavailableError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isRedisUnavailableError('ECONNREFUSED')).toBe(false);
    expect(isRedisUnavailableError(undefined)).toBe(false);
  });
});
