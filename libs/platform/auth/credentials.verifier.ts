import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE } from '#strata/control-plane';
import { DUMMY_HASH_PROMISE, verifyPassword } from './password.hasher';

/**
 * Email + password → the user, or null. An unknown email is checked against a dummy hash, so both
 * answers take one scrypt: the time of a failed login says nothing about whether the email exists.
 */
@Injectable()
export class CredentialsVerifier {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  async verify(email: string, password: string): Promise<{ id: string; email: string } | null> {
    const rows: Array<{ id: string; email: string; password_hash: string }> = await this.db.query(
      'SELECT id, email, password_hash FROM control.users WHERE email = $1',
      [email.toLowerCase()],
    );
    const user = rows[0];
    const ok = await verifyPassword(password, user?.password_hash ?? (await DUMMY_HASH_PROMISE));
    return user && ok ? { id: user.id, email: user.email } : null;
  }

  /** For a caller whose identity is already proven (a password change). */
  async verifyUser(userId: string, password: string): Promise<boolean> {
    const rows: Array<{ password_hash: string }> = await this.db.query('SELECT password_hash FROM control.users WHERE id = $1', [userId]);
    return verifyPassword(password, rows[0]?.password_hash ?? (await DUMMY_HASH_PROMISE)).then((ok) => ok && rows.length > 0);
  }
}
