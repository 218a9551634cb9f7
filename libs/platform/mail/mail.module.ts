import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { LogMailDriver } from './log-mail.driver';
import { MAIL_SENDER, type MailSender } from './mail.port';
import { MAIL_OPTIONS, resolveMailOptions, type MailModuleOptions, type ResolvedMailOptions } from './mail.options';
import { SmtpMailDriver } from './smtp-mail.driver';

/** MAIL_SENDER with the driver MAIL_DRIVER names (log | smtp); import forRoot() where mail is sent. */
@Module({})
export class MailModule implements OnApplicationShutdown {
  constructor(@Inject(MAIL_SENDER) private readonly sender: MailSender) {}

  static forRoot(options: MailModuleOptions = {}): DynamicModule {
    return {
      module: MailModule,
      providers: [
        // Resolved while the app is built, so a bad setting stops startup rather than the first invitation.
        { provide: MAIL_OPTIONS, useFactory: () => resolveMailOptions(options, process.env) },
        {
          provide: MAIL_SENDER,
          inject: [MAIL_OPTIONS],
          useFactory: (o: ResolvedMailOptions): MailSender => (o.driver === 'smtp' ? new SmtpMailDriver(o) : new LogMailDriver(o.from)),
        },
      ],
      exports: [MAIL_SENDER],
    };
  }

  onApplicationShutdown(): void {
    if (this.sender instanceof SmtpMailDriver) this.sender.close();
  }
}
