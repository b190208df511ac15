"""Labs: the helpers behind the history lab (notebook 07) and the mapcount lab (notebook 08).

* :mod:`mmkit.labs.history` -- the cow.c cases under every era, and why each cell passes or fails;
* :mod:`mmkit.labs.attack` -- a breadth-first attack finder over fork / write / vmsplice / pins;
* :mod:`mmkit.labs.mapcount` -- ways of tracking "who maps this page", and what each costs;
* :mod:`mmkit.labs.tasks` -- the labs' self-checking tasks (predict, build an attack, defend a design).
"""
