import { Controller, Delete, Get, HttpCode, Param } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, UuidPipe } from '#strata/common';
import { PlatformAdmin, PlatformOperator } from '#strata/auth';
import { OffboardingErrorCode as E, offboardingErrors } from './offboarding.errors';
import { OffboardingService } from './offboarding.service';
import { DeletionReportView } from './tenant-deletion.types';

/** Operators delete tenants, with proof of what was removed (libs/platform/offboarding/README.md). */
@Controller('admin/tenants')
@PlatformAdmin()
@ApiTags('admin: tenants')
export class OffboardingController {
  constructor(private readonly offboarding: OffboardingService) {}

  @Delete(':id')
  @HttpCode(202)
  @ApiAcceptedResponse({
    type: DeletionReportView,
    description:
      'the tenant is `deleting` (no longer served) and an executor removes it store by store; asking again answers the same deletion, running or finished. ' +
      'A `failed` tenant (its onboarding gave up) is taken too: only a schema or database its own onboarding marked is dropped, never one its slug collided with',
  })
  @ApiErrors(offboardingErrors(E.tenantNotFound, E.tenantStateConflict, E.moveInProgress))
  delete(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<DeletionReportView> {
    return this.offboarding.request(id, operator);
  }

  @Get(':id/deletion-report')
  @ApiOkResponse({ type: DeletionReportView, description: 'each store, what was removed there, counts and when; `status` deleted once finished' })
  @ApiErrors(offboardingErrors(E.tenantNotFound, E.deletionNotFound))
  report(@Param('id', UuidPipe) id: string): Promise<DeletionReportView> {
    return this.offboarding.report(id);
  }
}
