import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import { TIERS, type Tier } from '#strata/control-plane';

export class RequestMoveDto {
  @ApiProperty({ enum: TIERS })
  @IsIn(TIERS as Tier[], { message: `toTier must be one of ${TIERS.join(', ')}` }) toTier: Tier;

  /** Defaults to the default pool of `toTier`. */
  @ApiPropertyOptional({ pattern: '^[a-z][a-z0-9-]{1,38}[a-z0-9]$', description: 'default: the default pool of `toTier`' })
  @IsOptional() @Matches(/^[a-z][a-z0-9-]{1,38}[a-z0-9]$/, { message: 'toPoolId must be a pool id' }) toPoolId?: string;
}
