import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { LogMailDriver, type MailLog } from './log-mail.driver';
import { MailNotSentError } from './mail.port';
import { DEFAULT_MAIL_FROM, resolveMailOptions } from './mail.options';
import { SmtpMailDriver } from './smtp-mail.driver';

const INVITE = { to: 'ada@acme.test', subject: 'You are invited to Acme', text: 'Accept the invitation: https://app.test/accept#token=abc123' };

/** A log that keeps what it is given. */
function recordingLog(): MailLog & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return { lines, warnings, log: (m) => lines.push(m), warn: (m) => warnings.push(m) };
}

/**
 * Just enough of an SMTP server (RFC 5321: greeting, EHLO, MAIL, RCPT, DATA, QUIT) to receive what
 * the driver sends; no library for a test SMTP server is installed. `refuseRecipients` answers RCPT with 550.
 */
async function smtpServer(opts: { refuseRecipients?: boolean } = {}): Promise<{ url: string; messages: string[]; envelopes: string[][]; close(): Promise<void> }> {
  const messages: string[] = [];
  const envelopes: string[][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    let data: string[] | null = null;
    const envelope: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply('220 test.smtp ESMTP');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data) {
          if (line === '.') {
            messages.push(data.join('\r\n'));
            envelopes.push([...envelope]);
            data = null;
            reply('250 2.0.0 queued');
          } else data.push(line.startsWith('..') ? line.slice(1) : line);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') reply('250 test.smtp');
        else if (verb === 'MAIL') (envelope.push(line), reply('250 2.1.0 ok'));
        else if (verb === 'RCPT') opts.refuseRecipients ? reply('550 5.1.1 mailbox unavailable') : (envelope.push(line), reply('250 2.1.5 ok'));
        else if (verb === 'DATA') (data = [], reply('354 go ahead'));
        else if (verb === 'QUIT') (reply('221 bye'), socket.end());
        else if (verb === 'RSET' || verb === 'NOOP') reply('250 ok');
        else reply('502 5.5.2 not implemented');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    envelopes,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('mail options', () => {
  it('default to the log driver and a From of the platform', () => {
    expect(resolveMailOptions({}, {})).toEqual({ driver: 'log', from: DEFAULT_MAIL_FROM });
  });

  it('read MAIL_DRIVER, MAIL_FROM and SMTP_URL from the environment', () => {
    expect(resolveMailOptions({}, { MAIL_DRIVER: 'smtp', MAIL_FROM: 'Acme <hi@acme.test>', SMTP_URL: 'smtps://u:p@mail.test:465' })).toEqual({
      driver: 'smtp',
      from: 'Acme <hi@acme.test>',
      smtpUrl: 'smtps://u:p@mail.test:465',
      timeoutMs: 10_000,
    });
  });

  it('refuse an unknown driver and the smtp driver without SMTP_URL', () => {
    expect(() => resolveMailOptions({}, { MAIL_DRIVER: 'carrier-pigeon' })).toThrow(/MAIL_DRIVER must be log or smtp/);
    expect(() => resolveMailOptions({}, { MAIL_DRIVER: 'smtp' })).toThrow(/SMTP_URL is required/);
  });

  it('refuse an SMTP_URL that is not smtp:// or smtps:// without repeating its password', () => {
    expect(() => resolveMailOptions({}, { MAIL_DRIVER: 'smtp', SMTP_URL: 'https://user:s3cret@mail.test' })).toThrow(/must start with smtp:\/\/ or smtps:\/\//);
    let message = '';
    try {
      resolveMailOptions({}, { MAIL_DRIVER: 'smtp', SMTP_URL: 'not a url s3cret' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/SMTP_URL is not a URL/);
    expect(message).not.toContain('s3cret');
  });
});

describe('the log driver', () => {
  it('writes the recipient, the subject and the body with its link to the log, and sends nothing', async () => {
    const log = recordingLog();
    const driver = new LogMailDriver('Strata <no-reply@strata.test>', log);
    await driver.send(INVITE);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toContain('to ada@acme.test: You are invited to Acme');
    expect(log.lines[0]).toContain('https://app.test/accept#token=abc123');
    expect(log.lines[0]).toContain('not sent');
  });

  it('warns once, when it starts, that it is for development only', async () => {
    const log = recordingLog();
    const driver = new LogMailDriver(DEFAULT_MAIL_FROM, log);
    await driver.send(INVITE);
    await driver.send(INVITE);
    expect(log.warnings).toEqual([expect.stringMatching(/MAIL_DRIVER=log.*use MAIL_DRIVER=smtp in production/)]);
  });
});

describe('the smtp driver', () => {
  it('configures nodemailer from SMTP_URL (host, port, TLS, credentials) with a deadline on every phase', () => {
    const driver = new SmtpMailDriver({ from: DEFAULT_MAIL_FROM, smtpUrl: 'smtps://mailer:p%40ss@mail.example.test:465', timeoutMs: 1234 });
    try {
      const options = (driver.transport as unknown as { options: Record<string, unknown> }).options;
      expect(options).toMatchObject({
        host: 'mail.example.test',
        port: 465,
        secure: true,
        auth: { user: 'mailer', pass: 'p@ss' },
        connectionTimeout: 1234,
        greetingTimeout: 1234,
        socketTimeout: 1234,
      });
    } finally {
      driver.close();
    }
  });

  it('delivers a message to an SMTP server with its From, To, Subject and body', async () => {
    const server = await smtpServer();
    const driver = new SmtpMailDriver({ from: 'Acme <hi@acme.test>', smtpUrl: server.url, timeoutMs: 5000 });
    try {
      await driver.send(INVITE);
      expect(server.envelopes).toEqual([['MAIL FROM:<hi@acme.test>', 'RCPT TO:<ada@acme.test>']]);
      const message = server.messages[0];
      expect(message).toMatch(/^From: Acme <hi@acme\.test>$/m);
      expect(message).toMatch(/^To: ada@acme\.test$/m);
      expect(message).toMatch(/^Subject: You are invited to Acme$/m);
      expect(message).toContain('https://app.test/accept#token=abc123');
    } finally {
      driver.close();
      await server.close();
    }
  });

  it('rejects with MailNotSentError naming the server answer when the recipient is refused', async () => {
    const server = await smtpServer({ refuseRecipients: true });
    const driver = new SmtpMailDriver({ from: DEFAULT_MAIL_FROM, smtpUrl: server.url, timeoutMs: 5000 });
    try {
      const err = await driver.send(INVITE).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(MailNotSentError);
      expect((err as Error).message).toMatch(/550/);
      expect(server.messages).toEqual([]);
    } finally {
      driver.close();
      await server.close();
    }
  });

  it('rejects with MailNotSentError within its deadline when the server never greets', async () => {
    const held = new Set<Socket>();
    const silent = createServer((socket) => held.add(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    const driver = new SmtpMailDriver({ from: DEFAULT_MAIL_FROM, smtpUrl: `smtp://127.0.0.1:${port}`, timeoutMs: 300 });
    try {
      // Fail-closed bound, not a speed claim: without the deadline nodemailer would wait minutes.
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        driver.send(INVITE).then(() => 'sent', (e: unknown) => e),
        new Promise((r) => (timer = setTimeout(() => r('still waiting'), 5000))),
      ]).finally(() => clearTimeout(timer));
      expect(outcome).toBeInstanceOf(MailNotSentError);
    } finally {
      driver.close();
      for (const socket of held) socket.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
