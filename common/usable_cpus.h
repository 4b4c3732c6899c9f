// How many CPUs this process may run on.
#pragma once

namespace specontext {

// The process's CPU affinity (taskset, a container's cpuset), not all the machine has: more
// threads than that only take turns, and each parallel loop then waits on the slowest.
int UsableCpus();

}  // namespace specontext
