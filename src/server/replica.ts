import os from "node:os";

/**
 * This process's name among the replicas, shown on each job it runs (`replica` in the job's
 * status): a pod's hostname is its name under Kubernetes; the process id tells apart replicas
 * sharing one host. REWARD_EDIT_REPLICA overrides it.
 */
export const REPLICA_NAME = process.env.REWARD_EDIT_REPLICA?.trim() || `${os.hostname()}-${process.pid}`;
