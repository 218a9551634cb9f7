import { isHomeBusy, isHomeUnreachable } from './database-fault.classifier';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const wrapped = (driverError: Error) => Object.assign(new Error('query failed'), { driverError });

describe('home fault classifier', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['a server shutting down (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['a server starting up (57P03)', pgError('57P03', 'the database system is starting up')],
    ['a connection exception (08006)', pgError('08006')],
    ['too many connections (53300)', pgError('53300')],
    ['a connection that ended mid-query', new Error('Connection terminated unexpectedly')],
    ['a handshake that timed out', new Error('Connection terminated due to connection timeout')],
    ['every address refused (AggregateError)', new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], 'all failed')],
    ['a refusal wrapped by TypeORM', wrapped(pgError('57P01'))],
  ])('counts %s as the home being unreachable', (_what, err) => {
    expect(isHomeUnreachable(err)).toBe(true);
  });

  it.each([
    ['a unique violation', pgError('23505')],
    ['a missing database (the move fence handles it)', pgError('3D000')],
    ['a full pool waiting out its acquire timeout', new Error('timeout exceeded when trying to connect')],
    ['a programming error', new TypeError('x is not a function')],
    ['nothing', undefined],
  ])('does not count %s as the home being unreachable', (_what, err) => {
    expect(isHomeUnreachable(err)).toBe(false);
  });

  it('counts a lock timeout and a statement timeout as busy, and a cancel for another reason not', () => {
    expect(isHomeBusy(pgError('55P03', 'canceling statement due to lock timeout'))).toBe(true);
    expect(isHomeBusy(wrapped(pgError('57014', 'canceling statement due to statement timeout')))).toBe(true);
    expect(isHomeBusy(pgError('57014', 'canceling statement due to user request'))).toBe(false);
    expect(isHomeBusy(pgError('23505'))).toBe(false);
  });
});
