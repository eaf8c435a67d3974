"""A toolkit that makes a resource from one declaration: its table and its models in, its
statements, loader, reads, writes and standard routes out (`resource.Resource`,
`routes.standard_routes`, `fields`). Domain-free: it names no resource of the catalog."""
