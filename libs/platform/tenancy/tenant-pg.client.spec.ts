import { serialize } from 'pg-protocol';
import { ownBuffer } from './tenant-pg.client';

describe('cached setup bytes', () => {
  const parts = () => [serialize.bind({ statement: 'strata_enter_read_x', values: ['"t_acme"', '00000000-0000-4000-8000-000000000001', 't_acme'] }), serialize.execute()];

  it('Buffer.concat of a setup carves it from a shared slab: keeping it would pin the whole slab', () => {
    const concat = Buffer.concat(parts());
    expect(concat.buffer.byteLength).toBeGreaterThan(concat.length * 10);
  });

  it('ownBuffer keeps the same bytes in memory of their own, so a cached setup pins nothing else', () => {
    const own = ownBuffer(parts());
    expect(own.equals(Buffer.concat(parts()))).toBe(true);
    expect(own.byteOffset).toBe(0);
    expect(own.buffer.byteLength).toBe(own.length);
  });
});
