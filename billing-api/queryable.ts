/** What a repository method runs its SQL on: the pool, or the client of a transaction in progress. */
import type { Pool, PoolClient } from '../common/db.js';

export type Queryable = Pool | PoolClient;
