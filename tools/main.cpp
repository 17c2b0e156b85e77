// pgcqrs: one executable, many commands; also answers to the django-cqrs command names.
#include <iostream>
int main() { std::cout << "pgcqrs\n"; }
