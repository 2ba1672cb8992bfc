/// The HTTP side of Trove: the public listener and the admin API. Built in the serving-path issue (#3).
public enum TroveServer {}
