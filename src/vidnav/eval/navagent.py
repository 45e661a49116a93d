"""NavAgent: the interface of the agents `vidnav eval` runs (see :mod:`vidnav.eval.agents`).

agent.reset(env, obs)          # a new episode: env gives privileged access to the oracle only
action = agent.act(obs, info)  # 0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT (vidnav.actions)
"""


class NavAgent:
    name = "agent"

    def reset(self, env, obs: dict) -> None:
        pass

    def act(self, obs: dict, info: dict) -> int:
        raise NotImplementedError
