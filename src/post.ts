// The action's post step (action.yml runs.post, post-if: always()).
import { runPost } from './action/post-run.js';

void runPost();
