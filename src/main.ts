// The action's main step (action.yml runs.main). All logic lives in action/main-run.ts.
import { runMain } from './action/main-run.js';

void runMain();
