console.log('tour');
