import { startStub } from '../shared/stub-server.js'
import { buildUsersService } from './app.js'

await startStub(buildUsersService, 'USERS_PORT', 3001)
