import { startStub } from '../shared/stub-server.js'
import { buildUsersService } from './app.js'
import { DEFAULT_PORTS } from '../../src/lib/defaults.js'

await startStub(buildUsersService, 'USERS_PORT', DEFAULT_PORTS.users)
