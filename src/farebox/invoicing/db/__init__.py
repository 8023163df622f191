"""Invoice and credit queries; none commits."""
