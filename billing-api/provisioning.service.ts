/**
 * Transitional: provisioning lives in provisioning/. This path keeps the constructor from a pool for the
 * callers outside billing-api that still use it (gateway/crash.test.ts).
 */
import type { Pool } from '../common/db.js';
import { ProvisioningRepository } from './provisioning/provisioning.repository.js';
import { ProvisioningService as DomainProvisioningService } from './provisioning/provisioning.service.js';

export type { AccountRow, MeterRow } from './provisioning/provisioning.service.js';

export class ProvisioningService extends DomainProvisioningService {
  constructor(pool: Pool, scryptN: number) {
    super(new ProvisioningRepository(pool), scryptN);
  }
}
