import { execFileSync } from 'node:child_process';

/** Whether strace can trace a child here (it is installed, and ptrace is allowed). */
export const straceWorks = (() => {
  try {
    execFileSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
